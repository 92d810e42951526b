"""The write-back layer the faust worker's stages write through: a batch's writes
reach the table once per key, with the partition of the record that wrote last."""

from __future__ import annotations

from typing import Any

import pytest

from streams.writeback import WriteBack


def test_reads_see_the_batch_and_the_table_sees_nothing_until_flush() -> None:
    table: dict[str, Any] = {"a": 1, "b": 2}
    wb = WriteBack(table)
    wb.partition = 3
    wb["a"] = 10
    wb["c"] = 30
    del wb["b"]
    assert (wb["a"], wb.get("b"), wb["c"]) == (10, None, 30)
    assert "b" not in wb and "c" in wb
    assert dict(wb.items()) == {"a": 10, "c": 30} and len(wb) == 2
    assert table == {"a": 1, "b": 2}
    with pytest.raises(KeyError):
        del wb["b"]
    assert wb.flush() == 3
    assert table == {"a": 10, "c": 30} and wb.pending == 0


def test_each_key_is_put_once_with_its_last_value_and_partition() -> None:
    puts: list[tuple[str, Any, int | None]] = []
    wb = WriteBack({"gone": 0})
    for p in range(3):
        wb.partition = p
        wb["k"] = {"n": p}
    wb.partition = 7
    del wb["gone"]
    wb.flush(lambda key, value, partition: puts.append((key, value, partition)))
    assert puts == [("k", {"n": 2}, 2), ("gone", None, 7)]
    assert wb.flush(lambda *a: puts.append(a)) == 0 and len(puts) == 2
