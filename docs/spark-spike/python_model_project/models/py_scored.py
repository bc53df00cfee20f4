import numpy as np
import pyarrow as pa
from loan_recovery.spark.arrow_scoring import map_scores, payload_bytes

OUT = pa.schema([("loan_id", pa.string()), ("score", pa.float64())])


def score(batch, arrays):
    x = np.column_stack([batch.column("f0").to_numpy(), batch.column("f1").to_numpy()])
    return pa.RecordBatch.from_arrays([batch.column("loan_id"), pa.array(x @ arrays["w"])], schema=OUT)


def model(dbt, session):
    loans = dbt.ref("base_loans")
    print("PY_MODEL_DEBUG ref type:", type(loans).__module__, type(loans).__name__, "session:", type(session).__module__)
    return map_scores(loans.select("loan_id", "f0", "f1"), score, payload_bytes({"w": np.array([0.25, 0.75])}), OUT)
