"""kefu (客服): a self-hosted, LLM-based customer-service system for Chinese and English."""

__version__ = "0.1.0"
