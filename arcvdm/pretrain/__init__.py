"""Pretraining the `mini` backbone: procedural ARC-style tasks (`generator`), VAE and transformer stages (`stages`)."""
