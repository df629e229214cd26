"""Authentication secrets, rate limits and HTTP hardening."""
