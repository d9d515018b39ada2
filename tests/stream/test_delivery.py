"""The delivery gate: each offset once and in order, jumps explained before anything past them."""

from __future__ import annotations

from stream.run.delivery import DeliveryGate, Verdict


def test_processing_resumes_at_the_committed_offset_and_repeats_are_dropped():
    gate = DeliveryGate()
    gate.assign(0, (10, None))
    assert gate.check(0, 0, 10) is Verdict.PROCESS
    assert gate.check(0, 0, 11) is Verdict.PROCESS
    assert gate.check(0, 0, 10) is Verdict.REPEAT, "Faust sought back after the assignment"
    assert gate.expected(0, 0) == 12
    assert gate.check(0, 1, 57) is Verdict.PROCESS, "never committed: the first record starts"
    assert gate.expected(0, 1) == 58


def test_a_jump_over_records_that_exist_seeks_back_and_waits_for_them():
    gate = DeliveryGate()
    gate.assign(1, (100, 0))
    assert gate.check(1, 0, 140) is Verdict.JUMP
    assert gate.explained(1, 0, 140, first=100) is Verdict.AWAIT, "100 exists: it was lost"
    assert gate.expected(1, 0) == 100
    assert gate.check(1, 0, 141) is Verdict.AWAIT, "still in the buffer from before the seek"
    assert gate.check(1, 0, 100) is Verdict.PROCESS
    assert gate.check(1, 0, 102) is Verdict.JUMP, "a new jump once the seek is done"
    assert gate.counts["sought_back"] == 1


def test_a_jump_over_a_hole_in_the_log_is_accepted():
    gate = DeliveryGate()
    gate.assign(0, (7, 0))
    assert gate.check(0, 0, 9) is Verdict.JUMP
    assert gate.explained(0, 0, 9, first=9) is Verdict.PROCESS, "offset 8 is a marker"
    assert gate.check(0, 0, 10) is Verdict.PROCESS
    assert gate.counts["jumps_accepted"] == 1


def test_a_reassigned_partition_starts_again_from_its_committed_offsets():
    gate = DeliveryGate()
    gate.assign(2, (5, 5))
    gate.check(2, 0, 5)
    gate.check(2, 0, 6)
    gate.revoke(2)
    assert gate.expected(2, 0) is None
    gate.assign(2, (6, 5))
    assert gate.check(2, 0, 6) is Verdict.PROCESS
