"""Quality evaluation: answer extraction, verdicts and the code sandbox."""
