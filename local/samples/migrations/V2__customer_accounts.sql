-- Customer data: the schema is promoted, the rows never leave their env (not in the allow-list).
CREATE TABLE customer_account (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  holder_name   VARCHAR(200)    NOT NULL,
  iban          VARCHAR(34)     NOT NULL,
  currency_code CHAR(3)         NOT NULL,
  balance       DECIMAL(18, 2)  NOT NULL DEFAULT 0.00,
  opened_at     DATETIME(6)     NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY ux_customer_account_iban (iban),
  CONSTRAINT fk_customer_account_currency FOREIGN KEY (currency_code) REFERENCES currency (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
