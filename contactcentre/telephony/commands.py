"""Call control the console asks for, as AMI actions a real Asterisk 22 accepts."""

from __future__ import annotations

from contactcentre.telephony.ami.client import AmiClient


class PbxCommands:
    def __init__(self, ami: AmiClient):
        self._ami = ami

    async def answer(self, device: str) -> None:
        """Make a ringing desk phone pick up: SIP NOTIFY `Event: talk`, which
        Yealink, Polycom and Snom phones honour (res_pjsip_notify)."""
        technology, _, endpoint = device.partition("/")
        if technology != "PJSIP" or not endpoint:
            raise ValueError(f"device {device!r}: remote answer needs a PJSIP/<endpoint> device")
        await self._ami.send("PJSIPNotify", {"Endpoint": endpoint}, variables={"Event": "talk"})

    async def hangup(self, channel: str) -> None:
        await self._ami.send("Hangup", {"Channel": channel, "Cause": 16})
