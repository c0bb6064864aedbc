import pytest

pytestmark = pytest.mark.scenario

def test_hello_roundtrip(lambda_emulator_factory, hello_template):
    emu = lambda_emulator_factory(hello_template, backend="none")
    assert emu.invoke("hello", {"name": "x"})["message"] == "Hello, x!"
    second = emu.invoke("hello", {"name": "x"})
    assert second["warmInvocations"] == 2
