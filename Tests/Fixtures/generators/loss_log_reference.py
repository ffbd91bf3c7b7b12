"""Prints the expected loss.csv text for TrainingLossLogTests: A1111's write_loss format
(csv.DictWriter, loss formatted "%.7f", the learning rate as a Python float) for fixed rows.
    .venv-ref/bin/python Tests/Fixtures/generators/loss_log_reference.py
(or any python3); paste the output into Tests/TrainingTests/TrainingLossLogTests.swift."""
import csv
import io

ROWS = [(1, 0, 0, 0.123456789, 0.005), (2, 0, 1, 0.5, 0.005), (3, 1, 0, 1.25e-3, 1e-05), (4, 1, 1, 0.0, 1e-3),
        (5, 2, 0, 2.0, 5e-06), (6, 2, 1, 0.3333333333, 0.0001), (7, 3, 0, 1e-9, 1.0), (8, 3, 1, 0.1, 2.5e-07)]
out = io.StringIO()
writer = csv.DictWriter(out, fieldnames=["step", "epoch", "epoch_step", "loss", "learn_rate"])
writer.writeheader()
for step, epoch, epoch_step, loss, rate in ROWS:
    writer.writerow({"step": step, "epoch": epoch, "epoch_step": epoch_step, "loss": f"{loss:.7f}", "learn_rate": rate})
print(repr(out.getvalue()))
