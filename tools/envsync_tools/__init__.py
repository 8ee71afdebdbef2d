"""Tools that serve real deployments as well as the offline stand-in: the static permission
proof, the monthly cost estimate, the status page."""
