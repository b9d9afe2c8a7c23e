-- What errors do providers return, and how often? Stored errors of failed generations and of the attempts that failed before them, by provider and status (needs `ingest --with-content`).
-- --provider filters on the provider that answered the error; --model on the generation's model.
with errors as (

    select *, row_number() over (order by errors desc, provider_name, status) as volume_rank
    from (
        select
            coalesce(provider_name, '(unknown)') as provider_name,
            status,

            count(*) filter (where error_kind = 'returned') as failed_generations,
            count(*) filter (where error_kind = 'previous') as failed_earlier_attempts,
            count(*) as errors,
            count(distinct generation_id) as generations,
            sum(total_cost_usd) filter (where error_kind = 'returned') as failed_generations_cost_usd,
            mode(message) as most_common_message

        from content_errors
        where created_at >= $since and created_at < $until
            and ($model is null or model glob $model)
            and ($provider is null or provider_name glob $provider)
        group by all
    )

)

select * exclude (volume_rank)
from errors
where $top is null or volume_rank <= $top
order by volume_rank
