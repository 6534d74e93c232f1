"""Leader-follower teleoperation and episode recording into a LeRobotDataset v3.0."""
