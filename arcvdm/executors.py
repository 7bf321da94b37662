"""Where a dataset run's problems execute: in this process, `workers_per_gpu` workers per local GPU, or a submitit job
array (SLURM).

Every executor ends in the same worker, `solve_tasks`, which writes `problems/<id>.json` itself,
so resume and scoring never care where a problem ran.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import platform
import random
import shutil
import subprocess
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from arcvdm.config import RunConfig
from arcvdm.errors import ArcvdmError
from arcvdm.io import atomic_write_json, safe_name
from arcvdm.registry import Registry
from arcvdm.tasks import Task

OnDone = Callable[[str], None]
POLL_S = 1.0


def problem_path(out: Path, task_id: str) -> Path:
    """problems/<name>.json: the id's safe file name (arcvdm.io.safe_name); the id itself is kept inside."""
    return Path(out) / "problems" / f"{safe_name(task_id)}.json"


def problem_folder(out: Path, task_id: str) -> Path:
    """problems/<name>/: the problem's pictures."""
    return Path(out) / "problems" / safe_name(task_id)


def failed_record(task_id: str, error: BaseException | str, config: RunConfig, concept: str | None = None) -> dict:
    """The problem JSON of a failure: the same envelope as a finished problem, with the reason as status."""
    if isinstance(error, BaseException):
        first_line = (str(error).strip().splitlines() or [""])[0]
        reason = f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    else:
        reason, trace = error, None
    return {
        "task_id": task_id,
        "family": config.family,
        "concept": concept,
        "status": f"failed: {reason}",
        "seed": config.train.seed,
        "traceback": trace,
    }


def seed_everything(seed: int) -> None:
    """Seed every RNG from the config before each problem, so a problem's result never depends on the ones before it."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _free_accelerator_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def worker_info(backbone: Any) -> dict:
    """Where a problem ran: with SLURM that is a compute node, not the machine environment.json describes."""
    import torch

    device = getattr(backbone, "device", None)
    gpu = torch.cuda.get_device_name(device) if device is not None and device.type == "cuda" else None
    dtype = getattr(backbone, "dtype", None)
    return {"host": platform.node(), "device": str(device), "gpu": gpu,
            "dtype": None if dtype is None else str(dtype).removeprefix("torch.")}


def solve_and_record(task: Task, config: RunConfig, backbone: Any, out: Path, progress: Any = None) -> dict:
    """Solve one problem from a clean state and write its JSON atomically; any exception becomes a failed record."""
    from arcvdm.solver import solve_problem

    images = problem_folder(out, task.id)
    shutil.rmtree(images, ignore_errors=True)  # a redo must not inherit PNGs from an interrupted attempt
    try:
        seed_everything(config.train.seed)
        result = solve_problem(task, config, backbone, out_dir=images, progress=progress)
        result = {"task_id": task.id, **result, "worker": worker_info(backbone)}
    except Exception as e:  # NaN loss, out of memory, decode errors...: recorded, and the run goes on
        result = failed_record(task.id, e, config, task.concept)
        _free_accelerator_memory()
    atomic_write_json(problem_path(out, task.id), result)
    return result


def solve_tasks(tasks: list[Task], config: RunConfig, out: str | Path, on_done: OnDone | None = None,
                progress: Any = None) -> list[str]:
    """The worker: load the backbone once, then solve each task in turn. Returns each problem's status."""
    from arcvdm.backbones import load_backbone

    out = Path(out)
    try:
        backbone = load_backbone(config.backbone, config.device, config.dtype)
    except ArcvdmError:  # a wrong name or device: the user's to fix, so stop the run with the one-line error
        raise
    except Exception as e:  # out of memory, a broken download...: every problem of this worker fails, with the reason
        statuses = []
        for task in tasks:
            record = failed_record(task.id, e, config, task.concept)
            atomic_write_json(problem_path(out, task.id), record)
            statuses.append(record["status"])
            if on_done:
                on_done(task.id)
        return statuses
    statuses = []
    for task in tasks:
        statuses.append(solve_and_record(task, config, backbone, out, progress)["status"])
        if on_done:
            on_done(task.id)
    return statuses


# ---------------------------------------------------------------- executors

Executor = Callable[[list[Task], RunConfig, Path, OnDone], None]
EXECUTORS: Registry[Executor] = Registry("executor")


def executor_for(name: str) -> Executor:
    """The executor registered as `name`, once it is known to work here (checked before a run folder is touched)."""
    execute = EXECUTORS.get(name)
    if name == "slurm" and shutil.which("sbatch") is None:
        raise ArcvdmError("--executor slurm needs a SLURM cluster (no `sbatch` on PATH): run it on a login node, "
                          "or use --executor local")
    return execute


def visible_gpus() -> list[int]:
    """The physical indices of the GPUs this process may use (submitit sets each worker's CUDA_VISIBLE_DEVICES)."""
    import torch

    if not torch.cuda.is_available():
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return list(range(torch.cuda.device_count()))
    try:
        return [int(g) for g in listed.split(",") if g.strip()]
    except ValueError:
        raise ArcvdmError(f"CUDA_VISIBLE_DEVICES={listed} names GPUs by UUID: list indices (0,1,...) for one worker "
                          "per GPU, or pass --device cuda for one worker") from None


@EXECUTORS.register("local")
def run_local(tasks: list[Task], config: RunConfig, out: Path, on_done: OnDone) -> None:
    """`workers_per_gpu` worker processes per visible GPU (each its own CUDA_VISIBLE_DEVICES), or that many processes
    on CPU or a named device; a single worker runs in this process."""
    # A device named by the user (cpu, mps, cuda:1) means that device only, shared by the workers.
    gpus = visible_gpus() if config.device in (None, "cuda") else []
    n = config.workers_per_gpu
    slots = [[gpu] for gpu in gpus for _ in range(n)] or [visible_gpus()] * n  # the GPUs each worker sees
    if len(slots) <= 1:
        solve_tasks(tasks, config, out, on_done, progress=True)
        return
    import submitit

    executor = submitit.LocalExecutor(folder=out / "workers")
    jobs = []
    with starting_workers(out / "workers"):
        for i, seen in enumerate(slots):
            shard = tasks[i :: len(slots)]
            if not shard:
                continue
            # A shard runs its problems one after another: give it the per-problem time limit for each.
            executor.update_parameters(gpus_per_node=len(seen), visible_gpus=seen,
                                       timeout_min=config.slurm.time_min * len(shard))
            jobs.append((executor.submit(solve_tasks, shard, config, str(out)), shard))
    _wait(jobs, config, out, on_done)


@contextlib.contextmanager
def worker_threads():
    """Worker processes started meanwhile get this process's CPU thread count, as chosen by
    `arcvdm.environment.use_threads` (torch reads OMP_NUM_THREADS when it loads; sbatch exports the environment)."""
    from arcvdm.environment import THREADS

    saved = os.environ.get("OMP_NUM_THREADS")
    if THREADS:
        os.environ["OMP_NUM_THREADS"] = str(THREADS["threads"])
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved


@contextlib.contextmanager
def starting_workers(folder: Path):
    """While local worker processes start: `worker_threads`, and their own output goes to `folder`/workers.log, not
    the terminal. Ctrl-C reaches every process of the terminal: the run prints one line, and each worker's submitit
    controller a KeyboardInterrupt traceback, which belongs in the log."""
    import sys

    folder.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(folder / "workers.log", "a") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        with worker_threads():
            yield
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


def solve_together(tasks: list[Task], config: RunConfig, out: str | Path) -> list[str]:
    """One SLURM array task's problems, all at once: a process each, sharing the task's GPU (`workers_per_gpu`)."""
    if len(tasks) == 1:
        return solve_tasks(tasks, config, out)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: a forked child of a process that touched CUDA cannot use it.
    with ProcessPoolExecutor(len(tasks), mp_context=multiprocessing.get_context("spawn")) as pool:
        return [s for statuses in pool.map(solve_tasks, [[t] for t in tasks], [config] * len(tasks),
                                           [str(out)] * len(tasks)) for s in statuses]


@EXECUTORS.register("slurm")
def run_slurm(tasks: list[Task], config: RunConfig, out: Path, on_done: OnDone) -> None:
    """One SLURM job array: workers_per_gpu problems per array task (`slurm.gpus_per_node` GPUs each); logs under <out>/slurm/."""
    _run_array(slurm_executor(config, out), tasks, config, out, on_done, SlurmQueue())


@EXECUTORS.register("submitit-local")
def run_submitit_local(tasks: list[Task], config: RunConfig, out: Path, on_done: OnDone) -> None:
    """The job-array path of `slurm` through submitit's LocalExecutor: proves both write the same files."""
    import submitit

    executor = submitit.LocalExecutor(folder=out / "slurm")
    executor.update_parameters(timeout_min=config.slurm.time_min)
    _run_array(executor, tasks, config, out, on_done)


def slurm_executor(config: RunConfig, out: Path) -> Any:
    """A submitit SlurmExecutor with the SLURM options of `config.slurm` (one task per array element)."""
    import submitit

    s = config.slurm
    executor = submitit.SlurmExecutor(folder=Path(out) / "slurm")
    options = {
        "job_name": f"arcvdm-{Path(out).name}",
        "time": s.time_min,
        "cpus_per_task": s.cpus_per_task,
        "mem": f"{s.mem_gb}GB",
        "nodes": 1,
        "ntasks_per_node": 1,
        "array_parallelism": s.array_parallelism,
    }
    # Unset or 0: no such request, so a partition without GPUs (no GRES) accepts the array.
    options.update({k: v for k, v in {"partition": s.partition, "account": s.account, "qos": s.qos,
                                      "constraint": s.constraint, "gpus_per_node": s.gpus_per_node}.items() if v})
    executor.update_parameters(**options)
    return executor


class JobWatch:
    """When a submitit job has ended, and why it left no result: submitit's own view (local workers)."""

    def poll(self, jobs: list[Any]) -> None:
        pass

    def done(self, job: Any) -> bool:
        return job.done()

    def failure(self, job: Any) -> str:
        error = job.exception()
        if error is None:
            return "worker ended without writing a result"
        return f"worker died: {type(error).__name__}: {(str(error).strip().splitlines() or [''])[-1]}"


class SlurmQueue(JobWatch):
    """Array tasks end when their result file appears or when `squeue` stops listing them; never asks `sacct`.

    submitit learns that a job ended without a result (scancel, time limit, lost node, killed for memory) only from
    `sacct`, which needs the cluster's accounting database: without one it warns at every poll and waits forever.
    A task absent from `squeue` on two polls in a row, with no result file, has ended.
    """

    EVERY_S = 5.0  # squeue is a query to the controller that every user shares: not every second

    def __init__(self) -> None:
        import getpass

        self.user = getpass.getuser()
        self.absent: dict[str, int] = {}  # job id -> consecutive polls it was not listed
        self.last = 0.0

    def poll(self, jobs: list[Any]) -> None:
        if time.time() - self.last < self.EVERY_S:
            return
        self.last = time.time()
        # --array lists each array task (12_3) rather than a pending range (12_[3-9%2]).
        try:
            listed = subprocess.run(["squeue", "--noheader", "--array", "--format=%i", f"--user={self.user}"],
                                    capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):  # no squeue, or a stuck controller: nothing is concluded
            return
        if listed.returncode != 0:  # the controller did not answer
            return
        queued = set(listed.stdout.split())
        for job in jobs:
            self.absent[job.job_id] = 0 if job.job_id in queued else self.absent.get(job.job_id, 0) + 1

    def done(self, job: Any) -> bool:
        return job.paths.result_pickle.exists() or self.absent.get(job.job_id, 0) >= 2

    def failure(self, job: Any) -> str:
        if job.paths.result_pickle.exists():
            return super().failure(job)
        # slurmstepd writes why it ended the task (CANCELLED, DUE TO TIME LIMIT, oom-kill) at the end of its log.
        try:
            lines = [line.strip() for line in job.paths.stderr.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            lines = []
        last = lines[-1] if lines else "no log written"
        return f"SLURM job {job.job_id} ended without a result: {last} (log {job.paths.stderr})"


def _run_array(executor: Any, tasks: list[Task], config: RunConfig, out: Path, on_done: OnDone,
               watch: JobWatch | None = None) -> None:
    from submitit.core.utils import FailedJobError

    # With workers_per_gpu = N, an array task takes N problems and solves them at once on its GPU (one process
    # each): portable, where sharing a GPU between array tasks needs the cluster's MPS or GPU-sharding setup.
    n = config.workers_per_gpu
    shards = [tasks[i : i + n] for i in range(0, len(tasks), n)]
    try:
        # submitit echoes a refusal's stderr: it is in the error below
        with contextlib.redirect_stderr(io.StringIO()), worker_threads():
            jobs = executor.map_array(solve_together, shards, [config] * len(shards), [str(out)] * len(shards))
    except FailedJobError as e:  # sbatch refused the array: nothing was submitted, nothing is lost
        refusal = (str(e).strip().splitlines() or ["no reason given"])[0]
        raise ArcvdmError(f"the job array was refused ({refusal}): check --partition, --account, --qos, --time-min, "
                          "--gpus-per-node (0 on a partition without GPUs), --cpus-per-task and --mem-gb against "
                          "`sinfo --format '%P %l %c %m %G'`") from None
    _wait(list(zip(jobs, shards)), config, out, on_done, watch)


def _wait(jobs: list[tuple[Any, list[Task]]], config: RunConfig, out: Path, on_done: OnDone,
          watch: JobWatch | None = None) -> None:
    """Report problems as their files appear; a job that died without writing gets a failed record from here.

    The runner removes the stale records of pending problems first, so a file that exists is this run's result.
    """
    watch = watch or JobWatch()
    reported: set[str] = set()

    def report_new() -> None:
        for _, shard in jobs:
            for task in shard:
                if task.id not in reported and problem_path(out, task.id).exists():
                    reported.add(task.id)
                    on_done(task.id)

    try:
        while True:
            watch.poll([job for job, _ in jobs])
            if all(watch.done(job) for job, _ in jobs):
                break
            report_new()
            time.sleep(POLL_S)
    except KeyboardInterrupt:  # Ctrl-C stops the run everywhere; finished problems stay, a rerun resumes
        for job, _ in jobs:
            job.cancel(check=False)
        raise
    report_new()
    for job, shard in jobs:
        unreported = [task for task in shard if task.id not in reported]
        if not unreported:
            continue
        reason = watch.failure(job)
        for task in unreported:
            atomic_write_json(problem_path(out, task.id), failed_record(task.id, reason, config, task.concept))
            reported.add(task.id)
            on_done(task.id)
