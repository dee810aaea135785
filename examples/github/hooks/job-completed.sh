#!/bin/sh
# ACTIONS_RUNNER_HOOK_JOB_COMPLETED: release what job-started leased (a warning, never a failure,
# when there is nothing to release).
exec silo hook job-completed
