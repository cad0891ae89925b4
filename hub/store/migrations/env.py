from alembic import context

from hub.store.migrate import on_dialect
from hub.store.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=engine.dialect.name == "sqlite", compare_type=True,
                      include_object=on_dialect(engine.dialect.name))
    context.run_migrations()
