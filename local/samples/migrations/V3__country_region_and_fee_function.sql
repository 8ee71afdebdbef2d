-- A column, an index, and a stored function (DELIMITER block; semicolons inside the body).
ALTER TABLE country ADD COLUMN region VARCHAR(32) NULL AFTER name;
CREATE INDEX ix_country_region ON country (region);

DELIMITER $$
CREATE FUNCTION transfer_fee(amount DECIMAL(18, 2)) RETURNS DECIMAL(18, 2)
  DETERMINISTIC
BEGIN
  DECLARE fee DECIMAL(18, 2);
  SET fee = GREATEST(0.50, ROUND(amount * 0.001, 2)); -- 0.1 %; at least 0.50
  RETURN fee;
END$$
DELIMITER ;
