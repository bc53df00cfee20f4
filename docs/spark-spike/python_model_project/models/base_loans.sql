select id as loan_no, concat('LN_', cast(id as string)) as loan_id, rand(7) as f0, rand(8) as f1
from range(1000)
