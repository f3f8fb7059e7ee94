"""Review: drafts awaiting the operator's approval, edited and sent exactly once (docs/review.md)."""
