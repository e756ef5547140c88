"""The `edgefit` command: a thin layer over the Python API, one module per command."""
from __future__ import annotations

import os

import click

from .. import __version__
from .bench_cmd import bench_cmd
from .budget_cmd import budget
from .build_cmd import build_cmd
from .calibrate_cmd import calibrate_cmd
from .common import EdgefitGroup
from .compress_cmd import compress_cmd
from .demo_data_cmd import demo_data_cmd
from .doctor_cmd import doctor_cmd
from .errors_cmd import errors_cmd
from .export_cmd import export_cmd, verify_cmd
from .probe_cmd import probe_cmd
from .quiet import quiet_third_party
from .select_cmd import select_cmd
from .train_cmd import train_cmd
from .zoo_cmd import zoo_cmd


@click.group(cls=EdgefitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgefit")
@click.option("--verbose", is_flag=True, help="Show third-party log lines and warnings (TensorFlow, torch, Ray), "
              "which are kept off the terminal otherwise.")
def main(verbose):
    """Compile a device budget into a deployable vision model.

    \b
    Example:
      edgefit select budgets/pi-zero-2w.yaml
      edgefit select budgets/soc-x.yaml        (exits 1: nothing fits the worked example; it names the nearest miss)
    """
    if verbose:
        os.environ["EDGEFIT_VERBOSE"] = "1"
    quiet_third_party()


main.add_command(zoo_cmd)
main.add_command(select_cmd)
main.add_command(budget)
main.add_command(train_cmd)
main.add_command(demo_data_cmd)
main.add_command(doctor_cmd)
main.add_command(errors_cmd)
main.add_command(export_cmd)
main.add_command(verify_cmd)
main.add_command(bench_cmd)
main.add_command(calibrate_cmd)
main.add_command(probe_cmd)
main.add_command(compress_cmd)
main.add_command(build_cmd)
