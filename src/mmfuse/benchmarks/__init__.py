"""Benchmarks: train several methods on one dataset under one protocol and write a leaderboard."""
