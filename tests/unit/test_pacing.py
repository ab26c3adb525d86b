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
    pacer = Pacer(rate=10, workers=5, clock=t.clock, sleep=t.sleep)  # 2 emails/s for this worker
    for _ in range(11):
        pacer.wait()
    assert t.now == 5.0  # 11 sends: the first at 0 s, one every 0.5 s


def test_time_spent_sending_is_absorbed_by_the_schedule():
    t = FakeTime()
    pacer = Pacer(rate=4, workers=1, clock=t.clock, sleep=t.sleep)
    pacer.wait()
    t.now += 0.2          # rendering and sending took 0.2 s of the 0.25 s interval
    pacer.wait()
    assert len(t.slept) == 1 and abs(t.slept[0] - 0.05) < 1e-9


def test_a_slow_send_does_not_earn_a_burst_afterwards():
    t = FakeTime()
    pacer = Pacer(rate=10, workers=1, clock=t.clock, sleep=t.sleep)
    pacer.wait()
    t.now += 5.0           # one send stalled for 5 s
    pacer.wait()
    pacer.wait()
    assert len(t.slept) == 1 and abs(t.slept[0] - 0.1) < 1e-9  # no catching up: a full interval
