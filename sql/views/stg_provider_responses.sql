-- One row per upstream attempt (fallbacks included), with whether the attempt succeeded.
create or replace view stg_provider_responses as

with source as (

    select * from provider_responses

),

renamed as (

    select
        ---------- ids
        generation_id,
        id as upstream_response_id,
        endpoint_id,

        ---------- dimensions
        attempt,
        provider_name,
        model_permaslug,
        routed_service_tier,
        status,
        is_byok,
        -- a missing status is not a success: the attempt did not answer 2xx as far as anyone knows
        coalesce(status between 200 and 299, false) as is_success,

        ---------- numerics: time (ms)
        latency as latency_ms

    from source

)

select * from renamed
