"""Learning from corrections: a person takes the arm from a running policy with the leader arm,
each attempt is recorded whole (interventions flagged), and recipes train on it."""
