"""Ansible's linear strategy run over Mitogen (PyPI ``mitogen``), else the plain one.

With Mitogen, each host keeps one Python interpreter for the whole run and every task's
module runs in it, instead of a new interpreter started over SSH per task: a warm
``site.yml`` spends most of its time starting those (bench/README.md, provisioning).
ansible.cfg and the Molecule base config select this plugin (``strategy = mitogen_linear``,
``strategy_plugins = plugins/strategy``), so the path does not depend on where the
virtualenv and its Python version put Mitogen's own copy. Without Mitogen installed (an
Ansible that did not come from requirements.txt), the plain linear strategy runs: slower,
with the same results. ``ANSIBLE_STRATEGY=linear`` chooses the plain one explicitly.

Mitogen pins its processes to CPUs (on two CPUs: its multiplexer to one, everything it starts
to the other). Here that policy is replaced with Mitogen's own no-op one: a command a task
runs on the controller (the scenarios' load generators) and, through the test bed's ``podman
exec``, every process on the targets would inherit one CPU (the targets' processor count,
which sizes nginx's workers, would read 1).

Source: https://mitogen.networkgenomics.com/ansible_detailed.html (installation);
ansible_mitogen/affinity.py (the policies).
"""

try:
    import ansible_mitogen.affinity
    import ansible_mitogen.loaders  # noqa: F401  (checks the Ansible release first)
    import ansible_mitogen.strategy
except ImportError:
    from ansible.plugins.strategy.linear import StrategyModule  # noqa: F401
else:
    # Read by ansible_mitogen.process and .strategy when they start their processes.
    ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()
    _Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)

    class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
        """The linear strategy with Mitogen's connection and module execution."""
