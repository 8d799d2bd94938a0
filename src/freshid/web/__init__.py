"""HTTP plumbing shared by every route: security headers, error pages."""
