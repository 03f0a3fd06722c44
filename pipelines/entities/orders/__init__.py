"""Orders: order headers and their lines (grouped from one or two sources), exact money, ERP
dates, per-order checks and the reference checks against the target's customers and SKUs."""
