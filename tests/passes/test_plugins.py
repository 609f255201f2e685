"""A pass shipped in another installed package is found through the entry-point group."""
import os
import subprocess
import sys
import textwrap


def test_entry_point_plugin_is_listed_and_runs(tmp_path):
    pkg = tmp_path / "src"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "spikec-plugin-demo"
        version = "0.1"
        [project.entry-points."spikec.passes"]
        demo = "spikec_plugin_demo"
        [tool.setuptools]
        py-modules = ["spikec_plugin_demo"]
    """))
    (pkg / "spikec_plugin_demo.py").write_text(textwrap.dedent('''
        from spikec.passes import register

        @register("demo-negate-outputs")
        def negate(graph, *, times: int = 1):
            """Negate every graph output (a plug-in pass)."""
            for _ in range(times):
                outs = []
                for v in graph.outputs:
                    n = graph.make_node("neg", {"self": v}, [v.type])
                    graph.nodes.append(n)
                    outs.append(n.output)
                graph.set_outputs(outs)
    '''))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(pkg)], check=True, cwd=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(site)}
    listed = subprocess.run([sys.executable, "-m", "spikec", "passes"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert "demo-negate-outputs" in listed.stdout and "Negate every graph output" in listed.stdout
    ir_file = tmp_path / "g.ir"
    ir_file.write_text("graph @main(%x: f32[3]) -> (f32[3]) {\n  %0: f32[3] = exp(%x)\n  return %0\n}\n")
    out = subprocess.run([sys.executable, "-m", "spikec", "opt", str(ir_file), "-p", "demo-negate-outputs{times=2}"],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("= neg(") == 2
