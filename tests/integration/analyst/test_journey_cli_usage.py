"""Bad arguments of the journey-analysis commands: a clear message naming the argument and the valid values, exit
code 2, no traceback, before any store is opened."""

from __future__ import annotations

import pytest

from tests.helpers import run_cli


@pytest.mark.parametrize("args,expect", [
    (["funnel", "--step", "AD_CLIK", "--step", "CHECKOUT"], "--step: unknown event type 'AD_CLIK'"),
    (["funnel", "--step", "AD_CLICK", "--step", "CHECKOUT:colour=red"], "valid fields: channel, source, order_id, status"),
    (["funnel", "--step", "AD_CLICK", "--step", "CHECKOUT", "--window-days", "0"], "--window-days: must be > 0 days"),
    (["funnel", "--step", "AD_CLICK", "--step", "CHECKOUT", "--window-days", "-2"], "--window-days: must be > 0 days"),
    (["funnel", "--step", "AD_CLICK", "--step", "CHECKOUT", "--breakdown", "colour"],
     "--breakdown: unknown breakdown 'colour'; valid values: channel, campaign, platform, context.KEY"),
    (["funnel", "--step", "AD_CLICK", "--step", "CHECKOUT", "--mode", "loose"], "valid values: sequential, strict"),
    (["attribution", "--model", "u_shaped"], "--model: unknown attribution model 'u_shaped'; valid values: first_touch"),
    (["attribution", "--by", "platform"], "--by: unknown breakdown 'platform'; valid values: campaign, channel"),
    (["attribution", "--lookback-days", "0"], "--lookback-days: must be > 0 days"),
    (["pain-points", "--lookback-days", "-1"], "--lookback-days: must be > 0 days"),
    (["report", "--funnel-window-days", "0"], "--funnel-window-days: must be > 0 days"),
])
def test_bad_arguments_exit_2_with_the_valid_values(tmp_path, args: list[str], expect: str) -> None:
    done = run_cli(*args, env={"CLICKHOUSE_DSN": f"chdb://{tmp_path / 'none'}"})
    assert done.returncode == 2, done.stderr
    assert expect in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "none").exists()  # refused before the store was opened
