"""Property: valid SELECTs drawn from a small grammar are accepted by the read-only port and return exactly the
rows the engine returns for them directly (the owner's own client, no gate, no port).

The grammar mixes what a hand-written scanner gets wrong and ClickHouse reads plainly: identifiers holding
``$`` (``x$a$``), heredoc strings, nested comments, quotes and ``;`` inside strings, keywords in any case.
Seeded; the seed is printed and named in every failure message.
"""

from __future__ import annotations

import random
from typing import Any

import clickhouse_connect
import pytest

from tests.integration.analyst.hostile import Target, target  # noqa: F401 - target is a fixture

pytestmark = pytest.mark.integration

SEED = 20261205
SAMPLES = 120
COLUMNS = ["a", "b", "c"]
EXPRESSIONS = ["a", "b", "c", "a + 1", "length(b)", "upper(b)", "round(c, 2)", "a * 2", "toString(a)",
               "concat(b, $$;'$$)", "position(b, '$')", "if(a % 2 = 0, 'even', 'odd')", "'x;y' AS `s;t`"]
AGGREGATES = ["count()", "sum(a)", "max(b)", "round(avg(c), 3)", "uniqExact(b)", "groupArray(a)"]
CONDITIONS = ["a > 3", "b = 'it''s; --'", "b LIKE '%$%'", "c < 2.5", "a IN (1, 2, 3)", "NOT (a = 4)",
              "b != $h$x$h$", "length(b) >= 1"]
SOURCES = ["t", "(SELECT * FROM t WHERE a < 15)", "view(SELECT * FROM t)",
           "(SELECT number AS a, toString(number) AS b, number / 3 AS c FROM numbers(12))"]
DECORATIONS = ["{q}", "/* a /* nested */ comment */ {q}", "{q} -- trailing $a$ comment", "  {q} ;  ",
               "-- leading\n{q}", "{q} /* ; DROP TABLE t */"]


def _case(rng: random.Random, keyword: str) -> str:
    return rng.choice([keyword, keyword.lower(), keyword.title()])


def _select(rng: random.Random) -> str:
    source = rng.choice(SOURCES)
    where = f" {_case(rng, 'WHERE')} {rng.choice(CONDITIONS)}" if rng.random() < 0.6 else ""
    if rng.random() < 0.4:
        key = rng.choice(["a % 3", "b", "a > 5"])
        aggs = rng.sample(AGGREGATES, rng.randint(1, 3))
        body = (f"{_case(rng, 'SELECT')} {key} AS k, {', '.join(aggs)} {_case(rng, 'FROM')} {source}{where} "
                f"{_case(rng, 'GROUP BY')} k {_case(rng, 'ORDER BY')} k")
    else:
        picked = rng.sample(EXPRESSIONS, rng.randint(1, 4))
        aliased = [f"{e} AS x$a{i}$" if " AS " not in e and rng.random() < 0.3 else e for i, e in enumerate(picked)]
        limit = f" {_case(rng, 'LIMIT')} {rng.randint(1, 30)}" if rng.random() < 0.3 else ""
        body = (f"{_case(rng, 'SELECT')} {', '.join(aliased)} {_case(rng, 'FROM')} {source}{where} "
                f"{_case(rng, 'ORDER BY')} a, b, c{limit}")
    return rng.choice(DECORATIONS).format(q=body)


def test_valid_selects_are_accepted_with_the_engines_own_rows(target: Target) -> None:
    rng = random.Random(SEED)
    print(f"property seed {SEED}, {SAMPLES} statements")
    analyst = clickhouse_connect.get_client(host="127.0.0.1", port=target.server.port, database=target.database)
    direct: Any = clickhouse_connect.get_client(dsn=target.dsn, database=target.database)
    try:
        for n in range(SAMPLES):
            sql = _select(rng)
            expected = direct.query(sql).result_rows
            got = analyst.query(sql).result_rows
            assert got == expected, f"seed {SEED}, statement {n}: {sql!r}"
    finally:
        analyst.close()
        direct.close()
