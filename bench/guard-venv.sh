# Sourced by bench/guard.sh and bench/guard-harm.sh: the anchors' venv under target/bench
# (scikit-learn, LLM Guard without its model dependencies), built once; sets PY.
VENV=$PWD/target/bench/guard-venv
if [ ! -f "$VENV/.complete" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 structlog
  "$VENV/bin/pip" install --quiet --no-deps llm-guard==0.3.16
  touch "$VENV/.complete"
fi
PY=$VENV/bin/python
