"""Layers in templates (emulator.template.layers) and the packages prepared from them
(emulator.functions.packages): Lambda's rules at load time, merging and limits at start-up."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from emulator.functions import packages
from emulator.functions.packages import PackageError, prepare_packages
from emulator.template.loader import TemplateError, parse_template
from emulator.template.specs import AppSpec

SAM = "AWS::Serverless::Function"


@pytest.fixture(autouse=True)
def folders(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def handler(event, context):\n    return event\n")
    for name in ("one", "two", "three"):
        (tmp_path / name / "python").mkdir(parents=True)
        (tmp_path / name / "python" / f"{name}.py").write_text(f"WHO = {name!r}\n")
        (tmp_path / name / "python" / "common.py").write_text(f"WHO = {name!r}\n")


def layer(content: str = "one", **props: Any) -> dict[str, Any]:
    return {"Type": "AWS::Serverless::LayerVersion", "Properties": {"ContentUri": content, **props}}


def function(layers: list[Any] | None = None, **props: Any) -> dict[str, Any]:
    base = {"CodeUri": "src", "Handler": "app.handler", "Runtime": "python3.12", **props}
    if layers is not None:
        base["Layers"] = layers
    return {"Type": SAM, "Properties": base}


def load(tmp_path: Path, resources: dict[str, Any], warnings: list[str] | None = None, **sections: Any) -> AppSpec:
    sink: list[str] = [] if warnings is None else warnings
    app = parse_template({"Resources": resources, **sections}, base_dir=tmp_path, source="app.yaml", warn=sink.append)
    if warnings is None:
        assert sink == []
    return app


def failure(tmp_path: Path, resources: dict[str, Any]) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        load(tmp_path, resources, [])
    return caught.value


def test_globals_layers_come_first_then_the_functions_own(tmp_path: Path) -> None:
    app = load(tmp_path, {"One": layer("one"), "Two": layer("two", LayerName="second"),
                          "Fn": function([{"Ref": "Two"}])},
               Globals={"Function": {"Layers": [{"Ref": "One"}]}})
    assert [spec.logical_id for spec in app.functions["Fn"].layers] == ["One", "Two"]
    assert app.layers["Two"].arn == "arn:aws:lambda:us-east-1:123456789012:layer:second:1"
    assert app.layers["One"].content == (tmp_path / "one").resolve()


def test_more_than_five_layers_are_refused(tmp_path: Path) -> None:
    resources: dict[str, Any] = {f"L{i}": layer(LayerName=f"l{i}") for i in range(6)}
    resources["Fn"] = function([{"Ref": f"L{i}"} for i in range(6)])
    err = failure(tmp_path, resources)
    assert (err.logical_id, err.prop) == ("Fn", "Layers") and "at most 5" in str(err)


@pytest.mark.parametrize(("layers", "prop", "words"), [
    (["not-an-arn"], "Layers[0]", ["not a layer version ARN"]),
    ([{"Ref": "One"}, {"Ref": "One"}], "Layers[1]", ["twice"]),
    ("arn:aws:lambda:us-east-1:123456789012:layer:x:1", "Layers", ["must be a list"]),
])
def test_bad_layer_lists(tmp_path: Path, layers: Any, prop: str, words: list[str]) -> None:
    err = failure(tmp_path, {"One": layer(), "Fn": function(layers)})
    assert (err.logical_id, err.prop) == ("Fn", prop)
    assert all(word in str(err) for word in words)


@pytest.mark.parametrize(("resource", "prop", "words"), [
    (layer({"Bucket": "b", "Key": "k"}), "ContentUri", ["only local content"]),
    (layer("missing"), "ContentUri", ["neither a folder nor a .zip"]),
    ({"Type": "AWS::Lambda::LayerVersion", "Properties": {"Content": {"S3Bucket": "b", "S3Key": "k"}}}, "Content",
     ["only local content"]),
    ({"Type": "AWS::Lambda::LayerVersion", "Properties": {}}, "Content", ["is required"]),
    (layer(LayerName="bad name"), "LayerName", ["not a layer name"]),
])
def test_bad_layers(tmp_path: Path, resource: dict[str, Any], prop: str, words: list[str]) -> None:
    err = failure(tmp_path, {"Bad": resource})
    assert (err.logical_id, err.prop) == ("Bad", prop)
    assert all(word in str(err) for word in words)


def test_foreign_layers_incompatible_runtimes_and_unbuilt_layers_warn_once(tmp_path: Path) -> None:
    (tmp_path / "unbuilt").mkdir()
    (tmp_path / "unbuilt" / "requirements.txt").write_text("requests\n")
    foreign = "arn:aws:lambda:eu-west-1:017000801446:layer:Someone:3"
    warnings: list[str] = []
    app = load(tmp_path, {
        "Old": layer(CompatibleRuntimes=["python3.9"]),
        "Unbuilt": {**layer("unbuilt"), "Metadata": {"BuildMethod": "python3.12"}},
        "A": function([foreign, {"Ref": "Old"}, {"Ref": "Unbuilt"}]),
        "B": function([foreign, {"Ref": "Old"}]),
    }, warnings)
    assert [spec.logical_id for spec in app.functions["A"].layers] == ["Old", "Unbuilt"]
    assert len(warnings) == 3
    foreign_warning, runtime_warning = (next(w for w in warnings if word in w) for word in ("Someone:3", "python3.9"))
    build_warning = next(w for w in warnings if "does not build" in w)
    assert "(used by 'A') is not declared in this template" in foreign_warning
    assert "CompatibleRuntimes ['python3.9'], not python3.12" in runtime_warning
    assert "pip install -r requirements.txt -t" in build_warning


@pytest.mark.parametrize(("prop", "value", "words"), [
    ("CapacityProviderConfig", {"LambdaManagedInstancesCapacityProviderConfig": {}}, ["AWS_LAMBDA_MAX_CONCURRENCY"]),
    ("FileSystemConfigs", [{"Arn": "x", "LocalMountPath": "/mnt/efs"}], ["not mounted"]),
    ("SnapStart", {"ApplyOn": "PublishedVersions"}, ["every cold start runs Init"]),
    ("DurableConfig", {"ExecutionTimeout": 60}, ["durable functions are not emulated"]),
])
def test_properties_lambda_acts_on_but_the_emulator_does_not_warn_once(tmp_path: Path, prop: str, value: Any,
                                                                        words: list[str]) -> None:
    warnings: list[str] = []
    load(tmp_path, {"A": function(**{prop: value}), "B": function(**{prop: value})}, warnings)
    assert len(warnings) == 1 and f"property {prop!r}" in warnings[0]
    assert all(word in warnings[0] for word in words)


def test_snapstart_switched_off_says_nothing(tmp_path: Path) -> None:
    load(tmp_path, {"A": function(SnapStart={"ApplyOn": "None"})})


# --- packages ---------------------------------------------------------------------------------


def _zip(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, str(path.relative_to(folder)))
    return archive


def test_layers_are_merged_in_order_and_shared_by_functions_with_the_same_list(tmp_path: Path) -> None:
    _zip(tmp_path / "two", tmp_path / "two.zip")
    app = load(tmp_path, {"One": layer("one"), "Two": layer("two.zip"), "Three": layer("three"),
                          "A": function([{"Ref": "One"}, {"Ref": "Two"}]), "B": function([{"Ref": "One"}, {"Ref": "Two"}]),
                          "C": function([{"Ref": "Three"}]), "D": function()})
    work = tmp_path / "work"
    ready = prepare_packages(app, work)
    a, b, c, d = (ready.functions[name] for name in "ABCD")
    assert a.layers_dir == b.layers_dir and a.layers_dir is not None and work in a.layers_dir.parents
    python = a.layers_dir / "python"
    assert sorted(p.name for p in python.iterdir()) == ["common.py", "one.py", "two.py"]
    assert (python / "common.py").read_text() == "WHO = 'two'\n"  # the later layer wins
    assert c.layers_dir == ready.layers["Three"].content and work in c.layers_dir.parents  # a copy, not the source
    assert d.layers_dir is None and d.code_dir == (tmp_path / "src").resolve()
    assert ready.layers["One"].size == 2 * len("WHO = 'one'\n")
    (tmp_path / "one" / "python" / "one.py").write_text("changed")  # a published layer does not change
    assert (python / "one.py").read_text() == "WHO = 'one'\n"


def test_code_and_layers_over_250_mb_together_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages, "MAX_UNZIPPED_BYTES", 40)  # the limit, scaled down: 2 x 12 + 2 x 12 bytes
    _zip(tmp_path / "src", tmp_path / "code.zip")
    app = load(tmp_path, {"One": layer("one"), "Two": layer("two"),
                          "Fn": function([{"Ref": "One"}, {"Ref": "Two"}], CodeUri="code.zip")})
    with pytest.raises(PackageError, match="function Fn: its code and layers unpack to"):
        prepare_packages(app, tmp_path / "work")


def test_a_folder_link_in_a_later_layer_replaces_an_earlier_folder(tmp_path: Path) -> None:
    (tmp_path / "one" / "python" / "pkg").mkdir()
    (tmp_path / "one" / "python" / "pkg" / "__init__.py").write_text("WHO = 'one'\n")
    (tmp_path / "two" / "python" / "real").mkdir()
    (tmp_path / "two" / "python" / "real" / "__init__.py").write_text("WHO = 'two'\n")
    os.symlink("real", tmp_path / "two" / "python" / "pkg")
    app = load(tmp_path, {"One": layer("one"), "Two": layer("two"), "A": function([{"Ref": "One"}, {"Ref": "Two"}])})
    merged = prepare_packages(app, tmp_path / "work").functions["A"].layers_dir
    assert merged is not None and os.readlink(merged / "python" / "pkg") == "real"
    assert (merged / "python" / "pkg" / "__init__.py").read_text() == "WHO = 'two'\n"


@pytest.mark.parametrize(("props", "prop"), [
    ({"AutoPublishAlias": "live", "ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 1}},
     "ProvisionedConcurrencyConfig"),
    ({"SnapStart": {"ApplyOn": "PublishedVersions"}}, "SnapStart"),
    ({"Events": {"Jobs": {"Type": "SQS", "Properties": {"Queue": "arn:aws:sqs:us-east-1:123456789012:q"}}}},
     "Events.Jobs"),
])
def test_tenant_isolation_refuses_what_lambda_refuses_with_it(tmp_path: Path, props: dict[str, Any], prop: str) -> None:
    err = failure(tmp_path, {"Fn": function(TenancyConfig={"TenantIsolationMode": "PER_TENANT"}, **props)})
    assert (err.logical_id, err.prop) == ("Fn", prop)


def test_tenant_isolation_mode_must_be_per_tenant(tmp_path: Path) -> None:
    err = failure(tmp_path, {"Fn": function(TenancyConfig={"TenantIsolationMode": "SHARED"})})
    assert err.prop == "TenancyConfig.TenantIsolationMode" and "PER_TENANT" in str(err)
    app = load(tmp_path, {"Fn": function(TenancyConfig={"TenantIsolationMode": "PER_TENANT"},
                                         Events={"Web": {"Type": "Api", "Properties": {"Path": "/", "Method": "get"}}})},
               warnings=[])
    assert app.functions["Fn"].tenant_isolation_mode == "PER_TENANT"
