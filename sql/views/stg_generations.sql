-- One row per generation under analysis names with units, plus the derived measures every mart shares.
create or replace view stg_generations as

with source as (

    select * from generations

),

renamed as (

    select
        ---------- ids
        id as generation_id,
        session_id,
        request_id,

        ---------- dimensions
        model,
        provider_name,
        app_id,
        origin,
        http_referer,
        -- one label per app: its origin (in every record since 2025), else the referer, else the bare id
        coalesce(
            nullif(origin, ''),
            nullif(http_referer, ''),
            'app ' || app_id::varchar
        ) as app,
        external_user,
        api_type,
        finish_reason,
        native_finish_reason,

        ---------- flags
        is_byok,
        coalesce(streamed, false) as is_streamed,
        coalesce(cancelled, false) as is_cancelled,

        ---------- numerics: money (USD)
        total_cost as total_cost_usd,
        usage as usage_usd,
        upstream_inference_cost as upstream_inference_cost_usd,
        cache_discount as cache_discount_usd,
        -- cache_discount is positive when cached tokens were read cheaply, negative when writing the cache cost extra
        case when cache_discount > 0 then cache_discount else 0 end as cache_read_savings_usd,
        case when cache_discount < 0 then -cache_discount else 0 end as cache_write_cost_usd,

        ---------- numerics: tokens
        tokens_prompt,
        tokens_completion,
        native_tokens_prompt,
        native_tokens_completion,
        native_tokens_reasoning,
        native_tokens_cached,

        ---------- numerics: time (ms)
        latency as latency_ms,
        generation_time as generation_time_ms,
        moderation_latency as moderation_latency_ms,
        -- no rate without a positive generation time and a completion count
        case
            when generation_time > 0 and tokens_completion is not null
                then tokens_completion / (generation_time / 1000.0)
        end as completion_tokens_per_s,

        ---------- timestamps (UTC)
        created_at,
        (created_at at time zone 'UTC')::date as created_day

    from source

)

select * from renamed
