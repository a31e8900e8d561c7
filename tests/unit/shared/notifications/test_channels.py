"""Which channels an endpoint's notifications go by: its choice, a linked number, a configured email sender."""

from __future__ import annotations

import pytest

from shared.notifications.job import channels
from shared.settings import Settings
from shared.storage.config import FhirEndpoint

SENDER = Settings(email_sender_address="DoNotReply@x.azurecomm.net")
NO_SENDER = Settings(email_sender_address="")


@pytest.mark.parametrize(("channel", "number", "settings", "expected"), [
    ("sms", "+18335550100", SENDER, ("sms",)),
    ("email", "+18335550100", SENDER, ("email",)),
    ("both", "+18335550100", SENDER, ("sms", "email")),
    ("email_if_no_mobile", "+18335550100", SENDER, ("sms", "email")),
    ("email_if_no_mobile", "", SENDER, ("email",)),
    ("both", "+18335550100", NO_SENDER, ("sms",)),
    ("email", "", NO_SENDER, ()),
    ("sms", "", SENDER, ()),
])
def test_channels_follow_the_choice_and_what_is_set_up(channel, number, settings, expected):
    endpoint = FhirEndpoint(base_url="https://fhir.example/r4/t", environment="test", channel=channel,
                            sms_number=number)
    assert channels(endpoint, settings) == expected
