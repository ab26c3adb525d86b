from bulkmail.sending import Pacer


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_each_worker_sends_its_share_of_the_rate():
    t = FakeTime()
    pacer = Pacer(rate=10, workers=5, clock=t.clock, sleep=t.sleep, phase=0)  # 2 emails/s for this worker
    for _ in range(11):
        pacer.wait()
    assert t.now == 5.0  # 11 sends: the first at 0 s, one every 0.5 s


def test_time_spent_sending_is_absorbed_by_the_schedule():
    t = FakeTime()
    pacer = Pacer(rate=4, workers=1, clock=t.clock, sleep=t.sleep, phase=0)
    pacer.wait()
    t.now += 0.2  # rendering and sending took 0.2 s of the 0.25 s interval
    pacer.wait()
    assert len(t.slept) == 1 and abs(t.slept[0] - 0.05) < 1e-9


def test_a_stall_is_caught_up_on_for_at_most_one_second():
    t = FakeTime()
    pacer = Pacer(rate=10, workers=1, clock=t.clock, sleep=t.sleep, phase=0)
    pacer.wait()
    t.now += 5.0  # one send stalled for 5 s: 50 sends behind
    for _ in range(11):  # one second of schedule is made up at once, no more
        pacer.wait()
    assert t.slept == []
    pacer.wait()
    assert len(t.slept) == 1 and abs(t.slept[0] - 0.1) < 1e-9


def test_workers_starting_together_are_spread_over_one_interval():
    t = FakeTime()
    first_sends = []
    for _ in range(20):
        t.now = 0.0
        Pacer(rate=10, workers=5, clock=t.clock, sleep=t.sleep).wait()
        first_sends.append(t.now)
    assert 0 <= min(first_sends) < max(first_sends) <= 0.5
