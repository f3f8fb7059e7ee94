"""The receipts read model: runs and their leads' action receipts, as the Operations page reads them."""
