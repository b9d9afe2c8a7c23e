-- Cost per million tokens by model: blended, and split into prompt and completion prices by least squares.
create or replace view token_prices_by_model as

-- Over all time; the fit, and why it is one, is in sql/macros/token_prices_in_window.sql.

select * from token_prices_in_window('-infinity'::timestamptz, 'infinity'::timestamptz)
