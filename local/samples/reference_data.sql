-- Reference data as edited in dev (the source of truth); refdata sync carries it downstream.
INSERT INTO currency (code, name, minor_units) VALUES
  ('EUR', 'Euro', 2), ('USD', 'US Dollar', 2), ('GBP', 'Pound Sterling', 2),
  ('JPY', 'Yen', 0), ('CHF', 'Swiss Franc', 2), ('BHD', 'Bahraini Dinar', 3);
INSERT INTO country (iso2, name, region, currency_code) VALUES
  ('DE', 'Germany', 'EU', 'EUR'), ('FR', 'France', 'EU', 'EUR'), ('US', 'United States', 'NA', 'USD'),
  ('GB', 'United Kingdom', 'EU', 'GBP'), ('JP', 'Japan', 'APAC', 'JPY'), ('CH', 'Switzerland', 'EU', 'CHF'),
  ('BH', 'Bahrain', 'MEA', 'BHD'), ('AT', 'Österreich', 'EU', 'EUR');
