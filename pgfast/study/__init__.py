"""Multi-seed studies: jobs, their runner, result tables and plots.

A study is a set of independent jobs, one per (variant, env, seed). Each job
lives in its own directory ``OUT/ENV_ID/VARIANT/seedS/``::

    job.json        what the job is (algo, env, seed, steps, config)
    progress.csv    one row per training iteration (``Run.history`` rows)
    ckpt.pt         latest checkpoint (written atomically)
    ckpt.prev.pt    the checkpoint before it (used if ckpt.pt is unreadable)
    result.json     written last: final evaluation return; its presence marks
                    the job as finished
    tb/             TensorBoard event files (when tensorboard is importable)

Rerunning a study skips finished jobs and resumes interrupted ones from their
latest readable checkpoint. ``summary.csv`` and one PNG per environment are
written at the end, and can be redrawn from the logs alone with :func:`redraw`.

* :mod:`pgfast.study.catalogue`: variants, the shipped experiments, jobs;
* :mod:`pgfast.study.runner`: one job, and all of them in this process, in
  worker processes or on Ray;
* :mod:`pgfast.study.report`: statistics over seeds, summary tables, plots.
"""

from __future__ import annotations

from pgfast.study.catalogue import (DEFAULT_ENVS, EXPERIMENT_ENVS, EXPERIMENT_NEEDS, EXPERIMENT_TIMESTEPS,
                                    EXPERIMENTS, JOB_NAME, MUJOCO_ENVS, RESULT_NAME, VARIANTS, Job, Variant,
                                    check_job_dir, experiment_envs, experiment_timesteps, job_status, make_jobs)
from pgfast.study.report import (SUMMARY_FIELDS, aggregate, format_summary, format_summary_markdown, plot_env,
                                 redraw, seed_curves, summarize, t_critical_975, write_summary)
from pgfast.study.runner import importable_env, run_experiment, run_job

__all__ = [
    "Variant", "VARIANTS", "EXPERIMENTS", "DEFAULT_ENVS", "MUJOCO_ENVS", "EXPERIMENT_ENVS", "EXPERIMENT_TIMESTEPS",
    "EXPERIMENT_NEEDS", "experiment_envs", "experiment_timesteps", "Job", "JOB_NAME", "RESULT_NAME", "make_jobs",
    "job_status", "check_job_dir", "run_job", "run_experiment", "importable_env", "summarize", "SUMMARY_FIELDS",
    "write_summary", "format_summary", "format_summary_markdown", "seed_curves", "aggregate", "plot_env", "redraw",
    "t_critical_975",
]
