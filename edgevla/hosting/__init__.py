"""Hosting a policy: where a policy source is opened and put to work on a robot."""
