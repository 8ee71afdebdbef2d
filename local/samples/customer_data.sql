-- Per-env customer rows (never synced): prod's must never appear anywhere else.
INSERT INTO customer_account (holder_name, iban, currency_code, balance, opened_at) VALUES
  ('{env} customer A', CONCAT('DE89', LPAD(FLOOR(RAND() * 1e16), 16, '0'), '{env}'), 'EUR', 1250.00, NOW(6)),
  ('{env} customer B', CONCAT('GB29', LPAD(FLOOR(RAND() * 1e16), 16, '0'), '{env}'), 'GBP', 87.10, NOW(6));
