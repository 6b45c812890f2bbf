"""Runs the ORIGINAL musicnn TF graph on given log-mel patches (run with a TensorFlow venv).

Usage: python musicnn_tf_reference.py IN.npz OUT.npz [MTT_musicnn|MSD_musicnn]
IN.npz holds ``patches`` (P, 187, 96) float32. The graph, variable scopes and checkpoint restore
are musicnn's own (``musicnn.models.define_model``, as in ``musicnn.extractor``); only the input
differs from upstream's extractor: float32 patches, which avoids its float16 mel overflow.
Set up: python -m venv tfref && tfref/bin/pip install "tensorflow-cpu==2.21.*" "tf_keras==2.21.*"
        && tfref/bin/pip install --no-deps musicnn==0.1.0
"""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from musicnn import models  # noqa: E402


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    model = sys.argv[3] if len(sys.argv) > 3 else "MTT_musicnn"
    patches = np.load(source)["patches"].astype(np.float32)
    tf.compat.v1.disable_eager_execution()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, 187, 96])
        is_training = tf.compat.v1.placeholder(tf.bool)
        outputs = models.define_model(x, is_training, model, 50)
    names = ["logits", "timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool", "penultimate"]
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.train.Saver().restore(sess, os.path.join(os.path.dirname(models.__file__), model) + "/")
        values = sess.run(list(outputs), feed_dict={x: patches, is_training: False})
    np.savez(target, **{name: np.squeeze(v) if name in ("cnn1", "cnn2", "cnn3") else v for name, v in zip(names, values)})


if __name__ == "__main__":
    main()
