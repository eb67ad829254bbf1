import subprocess
import sys


def test_subpackages_install_under_bnas_tf_only(tmp_path):
    code = (
        "import bnas_tf, bnas_tf.tuners, bnas_tf.convert, importlib.util as u; "
        "print(u.find_spec('tuners') is None and u.find_spec('convert') is None)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("True")
