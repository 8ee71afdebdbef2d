"""The Lambda functions' entry points: the sync handlers and the stacks' custom resources."""
