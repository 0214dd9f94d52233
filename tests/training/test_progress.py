"""The terminal display: quiet off a terminal, a line per epoch, a progress bar."""

import deltaprop as dp
from support import train_small as _train


def test_verbose_two_prints_one_line_per_epoch(capsys):
    _train(0, epochs=2, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2 - loss: ")


def test_progress_bar_is_quiet_off_a_terminal(capsys):
    _train(0, epochs=2, verbose=1)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_bar_shows_batches_loss_and_epoch_summary(capsys):
    _train(
        0,
        epochs=2,
        batch_size=50,
        verbose=1,
        validation_split=0.2,
        callbacks=[dp.ProgressBar(force=True)],
    )
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "4/4" in err  # 160 training rows in batches of 50
    assert "val_acc" in err and "loss" in err
