#!/bin/sh
# ACTIONS_RUNNER_HOOK_JOB_STARTED: lease the job's cache (a private slot per matrix entry) and hand
# CARGO_HOME, CARGO_TARGET_DIR, SILO_KEY, SILO_SLOT and SILO_HOLDER to the job through GITHUB_ENV.
exec silo hook job-started --share private --ttl 6h
