"""Lead-run jobs: the state machine, the jobs API's use-cases, the batch worker and its self-invocation."""
