"""The few-shot dense vision suite over the shared core: task families, metrics, synthetic data, dataset adapters, runner."""
