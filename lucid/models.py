"""What every app shares in the database: named running totals."""

from django.db import models


class Counter(models.Model):
    """A running total, such as chunks by status or bytes stored by codec."""

    key = models.CharField(primary_key=True, max_length=100)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key} = {self.value}"
