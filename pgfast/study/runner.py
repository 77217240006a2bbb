"""Running a study: one job (:func:`run_job`) and all of them (:func:`run_experiment`).

Backends: ``"local"`` runs the jobs in this process (``workers=1``) or in up to
``workers`` worker processes at a time (one fresh process per job, one torch
thread each); ``"ray"`` runs them as Ray tasks (joining a cluster at ``address``
or starting a local one).

Stopping: the runner owns one :class:`~pgfast.session.StopFlag` (a caller may
hand in its own) and, unless a flag was handed in, guards SIGINT/SIGTERM with
it. Every job gets the flag: a job stops at the end of its current iteration
and saves a checkpoint; queued jobs do not start. Worker processes share the
request through a ``multiprocessing.Event`` and guard their own signals (a
Ctrl-C in the terminal reaches them too). Rerunning the same study resumes.

Workers die with their parent: each local worker asks the kernel for SIGKILL when the
process that started it dies (``PR_SET_PDEATHSIG`` on Linux) and also watches its parent
(a thread that ends the worker once it has been re-parented), so a SIGKILL of the study
leaves no worker training on. A killed worker leaves its last checkpoint (saves are atomic);
multiprocessing's resource tracker exits once the parent and the workers are gone.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from contextlib import nullcontext
from multiprocessing import connection
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, List, Mapping, Optional, Sequence

import torch

from pgfast import checkpoint
from pgfast.logs import scalar
from pgfast.rundir import TrainSession
from pgfast.session import Interrupted, SignalGuard, StopFlag
from pgfast.study.catalogue import JOB_NAME, RESULT_NAME, Job, check_job_dir, job_status
from pgfast.trainer import Run

__all__ = ["run_job", "run_experiment", "importable_env"]

Log = Callable[[str], None]
OnIteration = Callable[[Run, Mapping[str, Any]], None]


def _print(msg: str) -> None:
    print(msg, flush=True)


def _stamp(t0: Optional[float] = None) -> str:
    now = time.strftime("%H:%M:%S")
    return now if t0 is None else f"{now} +{time.monotonic() - t0:7.1f}s"


def _finish(job: Job, run: Run, t0: float, say: Log) -> Dict[str, Any]:
    """Evaluate a trained job (deterministic and stochastic), write its ``result.json`` atomically
    and return the result."""
    mean, std = run.evaluate(episodes=int(job.eval_episodes), deterministic=True)
    s_mean, s_std = run.evaluate(episodes=int(job.eval_episodes), deterministic=False)
    result = {
        "key": job.key,
        "env_id": job.env_id,
        "variant": job.variant,
        "algo": job.algo,
        "seed": job.seed,
        "global_step": int(run.global_step),
        "total_timesteps": job.total_timesteps,
        "eval_episodes": job.eval_episodes,
        "eval_mean": float(mean),
        "eval_std": float(std),
        "eval_stoch_mean": float(s_mean),
        "eval_stoch_std": float(s_std),
        "settings": job.settings,
        "wall_s": time.monotonic() - t0,
        "status": "done",
    }
    d = Path(job.out_dir)
    tmp = d / (RESULT_NAME + ".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, d / RESULT_NAME)
    say(f"[{_stamp()}] done   {job.key}: eval over {job.eval_episodes} episodes: deterministic {mean:.1f} ± "
        f"{std:.1f}, stochastic {s_mean:.1f} ± {s_std:.1f} ({time.monotonic() - t0:.1f}s)")
    return result


def run_job(job: Job, stop: Optional[StopFlag] = None, on_iteration: Optional[OnIteration] = None,
            log: Optional[Log] = None, progress_interval: float = 60.0) -> Dict[str, Any]:
    """Run one job to completion (or resume it) and write ``result.json``.

    Returns a dict with ``key``, ``status`` ("done", "skipped" or
    "interrupted"), ``eval_mean``, ``eval_std``, ``global_step`` and
    ``wall_s``. Finished jobs are skipped (their stored result is returned).
    ``stop``: the runner's stop flag (the runner then owns the signal handling);
    a job whose flag is already set returns "interrupted" without starting.
    """
    say = log or _print
    t0 = time.monotonic()
    d = Path(job.out_dir)
    status = job_status(job)
    if status == "done":
        r = json.loads((d / RESULT_NAME).read_text())
        r.update(status="skipped", key=job.key)
        return r
    if stop is not None and stop.requested:
        return {"key": job.key, "status": "interrupted", "error": "the study was asked to stop"}
    d.mkdir(parents=True, exist_ok=True)
    (d / JOB_NAME).write_text(json.dumps(job.to_json(), indent=1, default=str))
    resume = None
    if status == "partial" and checkpoint.exists(d):  # a job folder is only ever resumed, never replaced
        resume = d
        (d / RESULT_NAME).unlink(missing_ok=True)
    say(f"[{_stamp()}] start  {job.key} ({'resume' if resume else 'new'}, {job.total_timesteps} steps)")
    last = {"t": time.monotonic()}

    def on_iter(run: Run, row: Mapping[str, Any]) -> None:
        if progress_interval and time.monotonic() - last["t"] >= progress_interval:
            last["t"] = time.monotonic()
            r = scalar(row.get("episodic_return"))
            say(f"[{_stamp()}]   ... {job.key} step {int(row.get('global_step', 0))}/{job.total_timesteps}"
                f" return {r if r is None else round(r, 1)}")
        if on_iteration is not None:
            on_iteration(run, row)

    sess = TrainSession(
        d,
        algo=job.algo,
        env_id=job.env_id,
        total_timesteps=job.total_timesteps,
        seed=job.seed,
        device=job.device,
        config=job.config_dict(),
        resume=resume,
        checkpoint_interval=job.checkpoint_interval,
        tensorboard=job.tensorboard,
        settings=job.settings or None,
        log=say,
        on_iteration=on_iter,
        stop=stop,
        budget_note=False,
    )
    try:
        run = sess.run_training()
    except Interrupted as e:
        say(f"[{_stamp()}] stop   {job.key}: {e}")
        return {"key": job.key, "status": "interrupted", "wall_s": time.monotonic() - t0}
    return _finish(job, run, t0, say)


# --------------------------------------------------------------------------- worker side


def _run_job_reporting(job: Job, stop: StopFlag) -> Dict[str, Any]:
    """:func:`run_job` in a worker: an exception becomes a "failed" result."""
    try:
        return run_job(job, stop=stop)
    except Exception as e:  # report, don't kill the whole study
        traceback.print_exc()
        return {"key": job.key, "status": "failed", "error": f"{type(e).__name__}: {e}"}


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """End this process (SIGKILL, no clean-up) as soon as ``parent_pid``, the process that
    started it, is gone: ``PR_SET_PDEATHSIG`` where the kernel offers it (Linux), and on every
    platform a daemon thread that polls the parent's pid every ``poll_s`` seconds. A parent
    that died before this call ends the process at once. Called first thing in each worker."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the thread below still watches
            pass
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)  # re-parented: the study is gone

    threading.Thread(target=watch, name="pgfast-parent-watch", daemon=True).start()


def _job_process(job: Job, event: Any, conn: Any, parent_pid: int) -> None:
    """Entry point of a local worker process: dies with ``parent_pid``, one torch thread,
    signals guarded for the process's life, the result sent back through ``conn``."""
    die_with_parent(parent_pid)
    torch.set_num_threads(1)
    stop = StopFlag(event)
    with SignalGuard(stop):
        result = _run_job_reporting(job, stop)
    conn.send(result)
    conn.close()


def _group_process(jobs: Sequence[Job], event: Any, conn: Any, parent_pid: int) -> None:
    """Entry point of a local worker process of ``stack_seeds``: dies with ``parent_pid``;
    the seeds of one (variant, env) on one thread each (the native rollout and update release
    the GIL), one torch thread, signals guarded; the list of results sent back through ``conn``."""
    die_with_parent(parent_pid)
    torch.set_num_threads(1)
    stop = StopFlag(event)
    results: List[Dict[str, Any]] = [{} for _ in jobs]

    def one(k: int) -> None:
        results[k] = _run_job_reporting(jobs[k], stop)

    with SignalGuard(stop):
        threads = [threading.Thread(target=one, args=(k,), name=f"pgfast-{j.key}")
                   for k, j in enumerate(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    conn.send(results)
    conn.close()


def stack_groups(jobs: Sequence[Job]) -> List[List[Job]]:
    """The jobs grouped by everything but the seed (variant, algo, env, steps, config, device),
    in first-seen order: the units ``stack_seeds`` runs in one process each."""
    groups: Dict[Any, List[Job]] = {}
    for j in jobs:
        key = (j.variant, j.algo, j.env_id, j.total_timesteps, j.config, j.device)
        groups.setdefault(key, []).append(j)
    return list(groups.values())


def _ray_task(job: Job) -> Dict[str, Any]:
    """Entry point of a Ray task: one torch thread, signals guarded while the job runs."""
    torch.set_num_threads(1)
    stop = StopFlag()
    with SignalGuard(stop):
        return _run_job_reporting(job, stop)


def importable_env() -> Dict[str, str]:
    """PYTHONPATH that makes this pgfast importable in fresh worker processes."""
    root = str(Path(__file__).resolve().parent.parent.parent)
    pp = os.environ.get("PYTHONPATH", "")
    parts = [p for p in pp.split(os.pathsep) if p]
    if root not in parts:
        parts.insert(0, root)
    return {"PYTHONPATH": os.pathsep.join(parts)}


# --------------------------------------------------------------------------- runners


def run_experiment(
    jobs: Sequence[Job],
    workers: Optional[int] = None,
    backend: str = "local",
    address: Optional[str] = None,
    log: Optional[Log] = None,
    on_iteration: Optional[OnIteration] = None,
    stop: Optional[StopFlag] = None,
    stack_seeds: bool = False,
) -> List[Dict[str, Any]]:
    """Run every job (skipping finished ones, resuming interrupted ones).

    ``workers``: parallel jobs (default: CPU count; with Ray, CPUs of the
    local cluster it starts). ``backend``: "local" or "ray". With
    ``workers == 1`` and the local backend, jobs run in this process (and
    ``on_iteration`` is honoured; torch's thread count is set to one meanwhile
    and restored). ``stop``: a stop flag owned by the caller (who then handles
    signals); by default the local runner guards SIGINT/SIGTERM itself.
    ``stack_seeds`` (local backend): the seeds of each (variant, env) train in one worker
    process, one thread per seed, and ``workers`` counts those processes (each job's
    results equal a job run alone, bit for bit). Returns one result dict per job. Raises
    :class:`~pgfast.session.Interrupted` when stopped (running jobs save a checkpoint first).
    """
    if backend not in ("local", "ray"):
        raise ValueError(f"backend: expected 'local' or 'ray', got {backend!r}")
    if workers is not None and int(workers) < 1:
        raise ValueError(f"workers: must be >= 1, got {workers}")
    if address is not None and backend != "ray":
        raise ValueError("address: only valid with backend='ray'")
    if stack_seeds and backend != "local":
        raise ValueError("stack_seeds: only with backend='local'")
    say = log or _print
    n_workers = int(workers or os.cpu_count() or 1)
    t0 = time.monotonic()
    pending: List[Job] = []
    results: Dict[str, Dict[str, Any]] = {}
    for j in jobs:
        check_job_dir(j)
    for j in jobs:
        if job_status(j) == "done":
            results[j.key] = run_job(j, log=say)
            say(f"[{_stamp(t0)}] skip   {j.key} (finished: eval {results[j.key]['eval_mean']:.1f})")
        else:
            pending.append(j)
    say(f"[{_stamp(t0)}] {len(jobs)} jobs: {len(jobs) - len(pending)} finished, {len(pending)} to run "
        f"on {backend} with {n_workers} worker(s)")
    # longest jobs first (shorter makespan on a pool; ties keep the given order)
    pending.sort(key=lambda j: -j.total_timesteps)
    flag = stop if stop is not None else StopFlag()
    if pending and backend == "ray":  # Ctrl-C here raises KeyboardInterrupt; Ray stops its tasks
        results.update(_run_ray(pending, n_workers, address, say, t0))
    elif pending:
        guard: ContextManager[Any] = SignalGuard(flag) if stop is None else nullcontext()
        with guard:
            if stack_seeds:
                results.update(_run_processes(pending, n_workers, flag, say, t0, stacked=True))
            elif n_workers == 1:
                results.update(_run_here(pending, flag, say, on_iteration))
            else:
                results.update(_run_processes(pending, n_workers, flag, say, t0))
    out = [results[j.key] for j in jobs]
    bad = [r for r in out if r["status"] not in ("done", "skipped")]
    say(f"[{_stamp(t0)}] finished {len(out) - len(bad)}/{len(out)} jobs in {time.monotonic() - t0:.1f}s")
    if any(r["status"] == "interrupted" for r in bad):
        raise Interrupted("some jobs were interrupted; rerun the same command to resume them", flag.signum)
    if bad:
        raise RuntimeError("jobs failed: " + "; ".join(f"{r['key']}: {r.get('error', r['status'])}" for r in bad))
    return out


def _run_here(pending: Sequence[Job], stop: StopFlag, log: Log,
              on_iteration: Optional[OnIteration]) -> Dict[str, Dict[str, Any]]:
    """The jobs one after the other in this process, on one torch thread (restored after)."""
    results = {}
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for j in pending:
            try:
                r = run_job(j, stop=stop, on_iteration=on_iteration, log=log)
            except KeyboardInterrupt:
                raise Interrupted(f"interrupted during {j.key}", stop.signum) from None
            results[j.key] = r
            if r["status"] == "interrupted":
                raise Interrupted(f"interrupted during {j.key}; rerun the same command to resume", stop.signum)
    finally:
        torch.set_num_threads(old_threads)
    return results


def _run_processes(pending: Sequence[Job], workers: int, stop: StopFlag, log: Log,
                   t0: float, stacked: bool = False) -> Dict[str, Dict[str, Any]]:
    """Up to ``workers`` units at a time, each in a fresh (spawned) process: a job, or with
    ``stacked`` the jobs of one :func:`stack_groups` group (one thread each)."""
    ctx = mp.get_context("spawn")
    event = ctx.Event()  # the stop request, shared with the workers
    results: Dict[str, Dict[str, Any]] = {}
    queue: List[List[Job]] = stack_groups(pending) if stacked else [[j] for j in pending]
    running: Dict[Any, Any] = {}  # receiving end of a unit's pipe -> (process, jobs)
    old_pp = os.environ.get("PYTHONPATH")
    os.environ.update(importable_env())
    try:
        while queue or running:
            if stop.requested or event.is_set():
                event.set()
                for unit in queue:  # queued jobs do not start
                    for j in unit:
                        results[j.key] = {"key": j.key, "status": "interrupted"}
                queue = []
            while queue and len(running) < workers:
                unit = queue.pop(0)
                recv, send = ctx.Pipe(duplex=False)
                if stacked:
                    p = ctx.Process(target=_group_process, args=(unit, event, send, os.getpid()),
                                    name=f"pgfast-seeds-{unit[0].key}")
                else:
                    p = ctx.Process(target=_job_process, args=(unit[0], event, send, os.getpid()),
                                    name=f"pgfast-job-{unit[0].key}")
                p.start()
                send.close()
                running[recv] = (p, unit)
            for ready in connection.wait(list(running), timeout=0.5):
                conn: Any = ready
                p, unit = running.pop(conn)
                try:
                    got = conn.recv()
                    for j, r in zip(unit, got if stacked else [got]):
                        results[j.key] = r
                except EOFError:  # the process died without a result
                    p.join()
                    for j in unit:
                        results[j.key] = {"key": j.key, "status": "failed",
                                          "error": f"worker process exited with code {p.exitcode}"}
                        log(f"[{_stamp(t0)}] failed {j.key}: {results[j.key]['error']}")
                conn.close()
                p.join()
    finally:
        if running:  # leaving early (a second Ctrl-C): running jobs save and stop
            event.set()
            for p, _ in running.values():
                p.join()
        if old_pp is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old_pp
    return results


def _run_ray(pending: Sequence[Job], workers: int, address: Optional[str], log: Log,
             t0: float) -> Dict[str, Dict[str, Any]]:
    try:
        import ray  # optional dependency (the ray extra)
    except ImportError as e:
        raise ImportError("backend 'ray' needs Ray: pip install 'pgfast-rl[ray]'") from e
    started_here = False
    if not ray.is_initialized():
        runtime_env = {"env_vars": importable_env()}
        if address is not None:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, runtime_env=runtime_env, log_to_driver=True)
        started_here = True
    results: Dict[str, Dict[str, Any]] = {}
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        refs = {task.remote(j): j for j in pending}
        not_done = list(refs)
        while not_done:
            done, not_done = ray.wait(not_done, num_returns=1, timeout=None)
            for ref in done:
                j = refs[ref]
                try:
                    results[j.key] = ray.get(ref)
                except Exception as e:  # task crashed (e.g. worker died)
                    results[j.key] = {"key": j.key, "status": "failed", "error": f"{type(e).__name__}: {e}"}
                r = results[j.key]
                if r["status"] != "done":
                    log(f"[{_stamp(t0)}] {r['status']} {j.key}: {r.get('error', '')}")
                else:
                    log(f"[{_stamp(t0)}] done   {j.key}: eval {r['eval_mean']:.1f} (ray)")
    finally:
        if started_here:
            ray.shutdown()
    return results
