"""Calendar scheduling: request models, the schedule use-case and its calendar backends."""
