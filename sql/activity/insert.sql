-- The fetched rows (_orusage_activity).
insert into activity
select date, model, endpoint_id, model_permaslug, provider_name, usage, byok_usage_inference, requests,
    prompt_tokens, completion_tokens, reasoning_tokens, raw, fetched_at
from _orusage_activity
