-- Currency rates for billing CSV ingest (SPEC §7.1): every rate, the as-of join happens in polars.
SELECT currency, valid_from, rate_to_base
FROM fx_rate
