-- Reference data every env shares: currencies and countries (non-sensitive, synced).
CREATE TABLE currency (
  code         CHAR(3)      NOT NULL,
  name         VARCHAR(64)  NOT NULL,
  minor_units  TINYINT      NOT NULL DEFAULT 2,
  updated_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE country (
  iso2           CHAR(2)      NOT NULL,
  name           VARCHAR(100) NOT NULL,
  currency_code  CHAR(3)      NOT NULL,
  updated_at     TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (iso2),
  KEY ix_country_currency (currency_code),
  CONSTRAINT fk_country_currency FOREIGN KEY (currency_code) REFERENCES currency (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
