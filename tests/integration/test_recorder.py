"""`contactcentre record` as a user runs it, against the simulator, then replayed."""

import asyncio
import os
import sys

from contactcentre.telephony.recorder import replay
from tests.support import until


async def test_a_recording_started_mid_call_knows_the_call_that_was_already_up(stack, tmp_path):
    sim, services = stack.sim, stack.services
    queued = sim.place_call("+441632960102", "John Doe")  # nobody is ready: it waits in the queue
    await until(lambda: queued.moh)
    path = tmp_path / "day.ccami"
    env = {**os.environ, "CC_AMI_HOST": "127.0.0.1", "CC_AMI_PORT": str(sim.ami.port),
           "CC_AMI_USERNAME": services.settings.ami.username, "CC_AMI_SECRET": services.ami_secret}
    # A process of its own, as a user runs it; the simulator keeps running on this loop meanwhile.
    recorder = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "contactcentre", "record", str(path), "--seconds", "3", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await until(lambda: path.exists() and b"BridgeListComplete" in path.read_bytes(), timeout=20)
        queued.caller_hangup()  # the caller gives up while the recorder runs
        await asyncio.wait_for(queued.finished.wait(), 5)
        _, err = await asyncio.wait_for(recorder.communicate(), 20)
    finally:
        if recorder.returncode is None:
            recorder.kill()
            await recorder.wait()
    assert recorder.returncode == 0, err.decode()
    assert f"into {path} (connected)" in err.decode()

    result = replay([path])
    # The call began before the recording: only the PBX's answer at login makes it one of the day's calls.
    assert (result.calls, result.answered, result.abandoned) == (1, 0, 1)
    assert result.warnings == []
    recorded = path.read_bytes()
    assert recorded.index(b"CoreShowChannelsComplete") < recorded.index(b"BridgeListComplete")  # as the server asks
